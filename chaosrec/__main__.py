from chaosrec.cli import main

raise SystemExit(main())
