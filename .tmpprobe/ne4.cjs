require("ses"); lockdown({ errorTaming: "unsafe", overrideTaming: "moderate", stackFiltering: "verbose", consoleTaming: "unsafe" });
const src = require('fs').readFileSync(__dirname + '/ne3.cjs', 'utf8');
