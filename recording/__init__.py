"""recording: LeRobot v2.1 writer/reader/validator and the recorder node. Never imports torch."""
