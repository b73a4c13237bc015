"""gRPC runtime: hosts betterproto services on grpcio asyncio, with typed clients."""
