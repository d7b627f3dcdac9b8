// libzmq from the system (Debian's libzmq3-dev), for the cluster's transport.
#include <zmq.h>
