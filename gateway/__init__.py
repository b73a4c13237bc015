"""The Strawberry GraphQL gateway: HTTP + WebSocket subscriptions, calling services over gRPC."""
