from stacklab.cli.main import main

raise SystemExit(main())
