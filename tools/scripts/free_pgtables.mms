# munmap and free_pgtables: which page tables an unmap frees. A table goes only when the
# whole span it covers lies between the neighbours (floor = the previous VMA's end,
# ceiling = the next VMA's start); tables shared with a neighbour, or holding a page that
# is mapped with no VMA (arm64's signal trampoline), stay. x86_64's vsyscall page is
# init_mm's (vsyscall=xonly: no entry at all), so an x86_64 mm owns only its VMAs' tables.
#   mmemu script tools/scripts/free_pgtables.mms

echo "== x86_64: four VMAs in one pud table: A and B share a pte table, C has its own, D is 2 GiB up"
mm x arch=x86_64
let base = 0x40000000
a = mmap x $base 8K rw- private fixed
b = mmap x $base+64K 8K rw- private fixed
c = mmap x $base+4M 8K rw- private fixed
d = mmap x $base+2G 8K rw- private fixed
touch x $a 8K write
touch x $b 8K write
touch x $c 8K write
touch x $d 8K write
dump x pgtables

echo "== B goes: its pte table still maps A, so no table is freed"
munmap x $b 8K
expect tables x 7
echo "== C goes: its pte table spans only the gap between A and D: freed; the pmd table keeps A"
munmap x $c 8K
expect tables x 6
echo "== A goes: nothing below it, D above: its pte table and the pmd table of the first GiB go"
munmap x $a 8K
expect tables x 4
echo "== D goes: the last VMA; its pte, pmd and pud tables go: only the pgd is left"
munmap x $d 8K
expect tables x 1
expect vmas x 0
dump x pgtables

echo "== arm64: the trampoline above TASK_SIZE shares the stack's pmd table"
mm r arch=arm64 stack=132K
# E: 4 MiB below TASK_SIZE (0xffffffe00000), in the same pmd table as the stack
e = mmap r 0xffffffa00000 8K rw- private fixed
touch r $e 8K write
touch r 0xffffffdff000 write
touch r 0xffffffdfe000 write
dump r pgtables
echo "== the stack goes: its pte table is freed; the pmd table stays (USER_PGTABLES_CEILING is TASK_SIZE)"
munmap r 0xffffffddf000 132K
expect tables r 5
echo "== E goes too: its pte table is freed; the pud and pmd tables stay for the trampoline"
munmap r $e 8K
expect tables r 4
dump r pgtables
check
echo "== exit frees the arm64 arch mapping's tables; x86_64 has none"
exit x
exit r
expect live pgtable 0
