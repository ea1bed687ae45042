// The compiled part of header-only Boost.JSON, included once for the whole program: link easedge_mapping
// rather than including <boost/json/src.hpp> again elsewhere.
#include <boost/json/src.hpp>
