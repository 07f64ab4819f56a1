import sys

from ptpair.cli import main

sys.exit(main())
