// The one translation unit that compiles Asio and Beast (separate compilation): every other TU
// sees only declarations, which keeps the Beast-heavy TUs small on 2 cores.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
