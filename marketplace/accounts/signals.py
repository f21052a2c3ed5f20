from django.dispatch import Signal

# Sent by the accounts services when a way of being logged in stops working: an API token is
# revoked (credential "token:<id>"), or the whole account loses access (credential None).
# The inbox closes the open sockets that used it. Arguments: user_id, credential.
access_revoked = Signal()
