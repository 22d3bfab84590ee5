"""The messenger example: users, channels and messages served over REST and GraphQL."""
