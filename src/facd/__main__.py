from facd.cli import main

raise SystemExit(main())
