import sys

from sbvae.cli import main

sys.exit(main())
