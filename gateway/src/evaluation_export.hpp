// The evaluations' Excel export: a table written as an .xlsx workbook with libxlsxwriter.
#pragma once

#include <string>
#include <vector>

#include "scrm/common/error.hpp"

namespace scrm::gateway {

// The workbook's bytes: one sheet named `sheet`, the first row bold (the header), columns sized
// for Chinese text. Blocking (libxlsxwriter writes a temporary file, read back and removed): call
// it on a pool worker, never on an I/O thread. errc::server_error when the library fails.
result<std::string> xlsx_document(const std::vector<std::vector<std::string>>& rows,
                                  const std::string& sheet);

}  // namespace scrm::gateway
