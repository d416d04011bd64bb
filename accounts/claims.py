"""Claim names of ITIRP's own in the JWTs, shared by the code that issues tokens and the code that checks them."""

# On every access token: the jti of the refresh token it was issued with, i.e. its session. Blacklisting
# that refresh token (logout, deactivation) ends every access token of the session at once.
SESSION_CLAIM = "sid"
