"""What is read from a finished or running study: ``sweep status``, ``sweep compare`` and
Keras' stopping rule replayed, the report (curves, importances), the export (and where it
goes). Imports the layers below; ``train`` lazily."""
