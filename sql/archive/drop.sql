-- name: drop_month (a template: $partition is the quoted month partition of _raw_events)
-- The month's raw events leave the warehouse: their file is checked and the ledger says
-- where it is, in the same transaction.  A later landing of that month makes the
-- partition again (loader.warehouse.partitions).
DROP TABLE $partition
