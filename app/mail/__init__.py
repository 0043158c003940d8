"""Mail: SMTP sending for outbox handlers, .ics building and, for `reckon dev`, a local SMTP
catcher with a page listing what it caught. Transport only: what a mail says is composed by
its handler (app/mail/confirmation.py)."""
