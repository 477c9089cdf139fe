"""People: settings, notifications, webhooks, activity, exports and the account lifecycle."""
