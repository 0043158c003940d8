"""Customers: one record per person a business serves, matched by email or phone."""
