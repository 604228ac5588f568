# Sourced by the job scripts. Ray (2.60 on) starts heads with token authentication, and a client
# sends the head's token only with RAY_AUTH_MODE=token. Where no mode was chosen, use token mode
# when a token is at hand where Ray looks for one: RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH,
# or ~/.ray/auth_token (written by `ray start --head` on the head's machine; copy it to a remote
# client, or set RAY_AUTH_TOKEN there). RAY_AUTH_MODE=disabled on both sides opts out.
if [ -z "${RAY_AUTH_MODE:-}" ] && { [ -n "${RAY_AUTH_TOKEN:-}" ] ||
    [ -s "${RAY_AUTH_TOKEN_PATH:-${HOME:-~}/.ray/auth_token}" ]; }; then
  export RAY_AUTH_MODE=token
fi
