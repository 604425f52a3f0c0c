/* Placeholder until the mock upstream lands (tests/mock/). */
#include <stdio.h>
int main(void)
{
    fputs("ballast-mock: not built yet\n", stderr);
    return 1;
}
