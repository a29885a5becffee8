import sys

from acc_client.cli import main

sys.exit(main())
