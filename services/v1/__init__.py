"""Generated protobuf and gRPC code (scripts/gen_protos.py); do not edit."""
