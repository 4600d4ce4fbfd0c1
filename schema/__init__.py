"""The GraphQL face: Strawberry types, queries and mutations over the `models` layer."""
