#include "fabric/transport.hpp"
