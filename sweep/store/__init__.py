"""Opening and reading study storages: storage URLs and the journal file, the schema
check, the fast readers (SQL for relational storages), Optuna's cache warmed, who owns
which running trial, and the results table. The only home of Optuna's private API and raw
SQL. Imports ``core`` only."""
