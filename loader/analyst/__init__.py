"""The analyst side: reports, attribution, dbt sources."""
