"""OAuth2 consent (authorize and callback routes) and the token store behind OAuth2 handlers."""
