# What-if limits: the modelled kernel functions called with the floor, ceiling and tree_max
# you choose, to ask what a change to their callers would free. Like Linux, free_pgd_range
# frees a table once the limits allow it, without looking inside; a table that still mapped
# something is reported as the page-table use-after-free it would be (exit status 70).
#   mmemu script tools/scripts/what_if.mms

mm x arch=x86_64
let base = 0x40000000
a = mmap x $base 8K rw- private fixed
b = mmap x $base+64K 8K rw- private fixed
c = mmap x $base+128K 8K rw- private fixed
touch x $a 8K write
touch x $b 8K write
touch x $c 8K write
expect tables x 4

echo "== B goes with munmap's own limits (floor = A's end, ceiling = C's start): nothing freed"
unmap_region x $b $b+8K $a+8K $c $c
expect tables x 4

echo "== C goes with floor FIRST_USER_ADDRESS instead of A's end: the pte table A uses is freed"
unmap_region x $c $c+8K 0 0 0
expect tables x 1

echo "== A's page faults in afresh: its old contents went with the table"
read x $a 8

echo "== free_pgd_range over a live mapping, as a caller that forgot unmap_vmas would"
d = mmap x $base+1G 8K rw- private fixed
touch x $d 8K write
free_pgd_range x $d $d+8K 0 0
