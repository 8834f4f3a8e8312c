"""Postgres and its schema: connections, the embedded server, tables, migrations, the generated mapping SQL, the runs ledger, status."""
