"""The Drip REST side: the API client, the account sync, webhook registration."""
