// The SQLite materialization driver (SPEC 5): the embedded default. One connection in WAL
// mode with synchronous=FULL, so a committed transaction (rows and checkpoint together)
// survives a crash; writers take the database lock with BEGIN IMMEDIATE and wait for it.
// This file and sqlite.cc are the materialize module's only users of SQLite.
#pragma once

#include <memory>
#include <string>

#include "materialize/driver.h"

namespace flow::materialize {

// Opens (creating it and its directory) the database at `path`; `target` names the target
// in messages.
Result<std::unique_ptr<Driver>> ConnectSqlite(const std::string& path, const std::string& target);

}  // namespace flow::materialize
