"""The parts of an .xlsx file patched as text: what :mod:`notifier.corrections` needs to add to a
workbook that openpyxl wrote, without loading it into openpyxl again (~1 ms against ~15 ms).

Pure and generic: XML strings and bytes in, XML strings and bytes out. The parts are expected as
openpyxl writes them (one element per child, no comments, no processing instructions, cell texts
escaped, inline strings); the helpers find elements with regular expressions on that form, they
are no general XML editors.

* ``text``: :func:`xml_text` and :func:`xml_attr` escape what goes into an element or an attribute;
  a character XML 1.0 cannot carry (a control character, a lone surrogate) never makes a file
  Excel refuses: in a text it is written in Excel's own ``_xHHHH_`` notation (which Excel, and
  our reader, decode back), in an attribute it becomes U+FFFD. A cell holds at most Excel's
  32,767 characters (:func:`clip`, as openpyxl cuts them);
  cells and rows: :func:`value_cell` and the like write a ``<c>``;
* ``sheets``: :class:`SheetPatch`
  changes some cells and rows of an existing sheet; :func:`worksheet_xml` writes a new one;
  :func:`insert_child` puts an element where the schema wants it (Excel refuses a file whose
  ``<worksheet>`` children are out of order);
* ``styles``: :class:`StyleBuilder` appends fonts, fills, borders, number formats and cell formats
  (``xf``) to ``xl/styles.xml``, and derives a cell's new format from its current one;
* ``package``: workbook, relationships, content types, comments (with their VML drawing, as
  openpyxl writes it), and :func:`zip_archive`, a zip with fixed timestamps whose members can be
  compressed once and reused (:func:`pack`).
"""
