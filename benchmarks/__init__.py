"""The benchmark scripts; a package so the tests can import the scoreboard (the scripts run as files)."""
