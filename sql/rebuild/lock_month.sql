-- name: lock_month (a template: $partition is tracks' quoted partition of the month)
-- Hold writers of the month off while rebuild decides whether it may empty it: no row
-- without raw can appear between the check (month_state.sql) and the TRUNCATE.
LOCK TABLE $partition IN SHARE ROW EXCLUSIVE MODE
