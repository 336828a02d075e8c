// The version Hookline reports on the wire (user-agent) and in /healthz.
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const VERSION: string = require('../package.json').version;
export const USER_AGENT = `Hookline/${VERSION}`;
