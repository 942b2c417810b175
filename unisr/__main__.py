import sys

from unisr.cli.main import main

sys.exit(main())
