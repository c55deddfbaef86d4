"""Write a French catalogue from a {English: French} table: python tools/po.py <table.py> <out.po>.

The table module defines ``FR = {...}``. Used to keep each part's ``.po`` in
``src/rempart/web/locale/fr/LC_MESSAGES`` (tests/web/test_i18n.py checks every word has one).
"""

from __future__ import annotations

import runpy
import sys

from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

table = runpy.run_path(sys.argv[1])["FR"]
catalog = Catalog(locale="fr", project="Rempart", version="1", copyright_holder="Rempart", charset="utf-8", fuzzy=False)
for english, french in table.items():
    catalog.add(english, french)
with open(sys.argv[2], "wb") as out:
    write_po(out, catalog, width=0, omit_header=False, no_location=True)
