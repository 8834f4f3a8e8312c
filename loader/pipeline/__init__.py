"""The file load: extract -> land -> transform -> emit, and the run that drives them."""
