"""The shopping-chat page for people: GET /chat, on POST /v1/chat."""
