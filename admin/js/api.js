// The gateway's API for the administration pages (docs/api.md "Administration", "Evaluations").
// Authentication is the console's HttpOnly cookie set by sign-in: the page never reads or keeps the
// token. Every call resolves to {ok, status, body}; a network failure is status 0 with a Chinese
// error text, like the gateway's own errors.
// The wrapper and the query builder are the console's (the gateway serves both page sets).

import { call, query, signIn, signOut, me } from '/console/js/api.js';

export { call, query, signIn, signOut, me };

export const get = (path) => call('GET', path);
export const post = (path, body = {}) => call('POST', path, body);
export const put = (path, body) => call('PUT', path, body);
export const del = (path) => call('DELETE', path);

