"""Reading the Annexe 2 workbook: the cell readers, the table locator, values, validation rules and
the single entry point, :mod:`parsers.workbook.check`."""
