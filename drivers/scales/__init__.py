"""Serial weighing indicators: frame parsers per indicator model, transports, the Scale driver."""
