import sys

from scadad.main import main

sys.exit(main())
