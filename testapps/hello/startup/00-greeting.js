// Startup file 1 of 2: runs in every new session before any snippet.
globalThis.greeting = "Hello";
globalThis.startupOrder = ["00-greeting"];
