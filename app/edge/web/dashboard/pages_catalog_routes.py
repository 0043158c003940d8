"""The catalog and settings pages' handlers, in one list for app.edge.web.dashboard.routes to
mount behind signed_in, manager_only and csrf_protected (staff: 403 on every one)."""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler

from app.edge.web.dashboard import (
    pages_catalog,
    pages_catalog_hours,
    pages_catalog_products,
    pages_catalog_services,
    pages_settings,
    pages_settings_users,
)

CATALOG_HANDLERS: list[HTTPRouteHandler] = [
    pages_catalog.catalog_home,
    pages_catalog.branches,
    pages_catalog.create_branch,
    pages_catalog.branch,
    pages_catalog.update_branch,
    pages_catalog.archive_branch,
    pages_catalog.resources,
    pages_catalog.new_resource,
    pages_catalog.create_resource,
    pages_catalog.resource,
    pages_catalog.update_resource,
    pages_catalog.archive_resource,
    pages_catalog_hours.hours,
    pages_catalog_hours.save_hours,
    pages_catalog_hours.add_time_off,
    pages_catalog_services.services,
    pages_catalog_services.new_service,
    pages_catalog_services.create_service,
    pages_catalog_services.service_page,
    pages_catalog_services.update_service,
    pages_catalog_services.archive_service,
    pages_catalog_products.products,
    pages_catalog_products.create_product,
    pages_catalog_products.product,
    pages_catalog_products.update_product,
    pages_catalog_products.record_stock_movement,
    pages_catalog_products.archive_product,
    pages_settings.settings_home,
    pages_settings.providers,
    pages_settings.save_providers,
    pages_settings.invoicing,
    pages_settings.save_invoicing,
    pages_settings_users.users,
    pages_settings_users.create_user,
    pages_settings_users.update_user,
    pages_settings_users.set_active,
]
