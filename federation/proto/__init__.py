"""Generated gRPC stubs of the party-to-party transport (see transport.proto); regenerate with `make proto`."""
