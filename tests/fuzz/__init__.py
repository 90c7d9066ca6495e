"""A seeded fuzzer of the line and call machines, driven from the sim card's far side."""
