# The fork-failure demo. A parent with 55 VMAs of every kind fork has to handle (file text
# and data, heap, libraries split by mprotect, thread stacks with guard pages, shared,
# locked, DONTFORK, WIPEONFORK, NORESERVE, PROT_NONE, growsdown), pages touched; then a
# fork whose allocations fail in the middle of dup_mmap, recovered the way --recovery says:
#   xa-zero   the old kernel: an XA_ZERO marker where the copy stopped; walkers that do not
#             check the mm meet it
#   tree-max  the RFC: unmap and tear down up to the failed VMA, destroy the tree before the
#             lock drops; walkers find an empty tree
#   partial   erase the entries not copied, keep the copied VMAs for exit_mmap
# Each failed fork must leave the parent as it was and nothing allocated behind.
#   mmemu script --recovery xa-zero tools/scripts/fork_failure.mms

mm parent stack=132K
touch parent 0x7fffffffd000 8K write

echo "== the program: text, read-only data, data and bss at 0x400000; a heap above"
text = mmap parent 0x400000 64K r-x private file=prog size=96K fixed
rodata = mmap parent 0x410000 16K r-- private file=prog off=64K fixed
data = mmap parent 0x414000 16K rw- private file=prog off=80K fixed
bss = mmap parent 0x418000 32K rw- private fixed
touch parent $text 16K exec
touch parent $rodata read
write parent $data "initialised data"
touch parent $bss 32K write
heap = brk parent
brk parent +128K
touch parent $heap 64K write

echo "== four shared libraries, each mapped once and split by mprotect into text, rodata, data"
libc = mmap parent auto 64K r-x private file=libc.so size=64K
mprotect parent $libc+32K 16K r--
mprotect parent $libc+48K 16K rw-
touch parent $libc 8K exec
touch parent $libc+48K 8K write
libm = mmap parent auto 64K r-x private file=libm.so size=64K
mprotect parent $libm+32K 16K r--
mprotect parent $libm+48K 16K rw-
touch parent $libm exec
touch parent $libm+48K write
libz = mmap parent auto 64K r-x private file=libz.so size=64K
mprotect parent $libz+32K 16K r--
mprotect parent $libz+48K 16K rw-
touch parent $libz exec
touch parent $libz+48K write
libssl = mmap parent auto 64K r-x private file=libssl.so size=64K
mprotect parent $libssl+32K 16K r--
mprotect parent $libssl+48K 16K rw-
touch parent $libssl exec
touch parent $libssl+48K write

echo "== eight thread stacks, each with a PROT_NONE guard page at its bottom"
repeat 8 t
  st = mmap parent auto 64K rw- private
  mprotect parent $st 4K ---
  touch parent $st+56K 8K write
end

echo "== six malloc arenas, read-write, each with a read-only neighbour"
repeat 6 a
  arena = mmap parent auto 32K rw- private
  touch parent $arena 32K write
  ro = mmap parent auto 16K r-- private
  touch parent $ro read
end

echo "== shared memory, a shared file, locked, DONTFORK, WIPEONFORK, NORESERVE, PROT_NONE"
shm1 = mmap parent auto 16K rw- shared
touch parent $shm1 16K write
shm2 = mmap parent auto 8K rw- shared
touch parent $shm2 write
db = mmap parent auto 8K rw- shared file=db.dat size=8K
touch parent $db 8K write
locked = mmap parent auto 16K rw- private locked
dontfork = mmap parent auto 16K rw- private
madvise parent $dontfork 16K dontfork
touch parent $dontfork 16K write
wipe = mmap parent auto 16K rw- private
madvise parent $wipe 16K wipeonfork
touch parent $wipe 16K write
nores = mmap parent auto 64K rw- private noreserve
touch parent $nores 8K write
reserve = mmap parent auto 1M --- private noreserve
grows = mmap parent auto 32K rw- private growsdown
touch parent $grows+28K write

echo "== the parent before the fork"
expect vmas parent 55
check
dump parent vmas
dump parent tree
dump parent counters
snapshot parent

echo "== walkers that can reach the dying child between dup_mmap giving up and exit_mmap"
walker unuse_mm-nocheck
walker unuse_mm
walker rmap-nocheck
walker rmap
walker oom_reaper-nocheck
walker oom_reaper

echo "== fork 1: the 28th VMA copy (vm_area_dup) fails, half way through the tree"
inject vma:28
fork parent child
expect errno ENOMEM
expect unchanged parent
expect no-leaks-since parent

echo "== fork 2: anon_vma_fork fails further on, at the data of libz.so"
inject anon_vma:64
fork parent child
expect errno ENOMEM
expect unchanged parent
expect no-leaks-since parent

echo "== fork 3: copy_page_range cannot get a page table for the libraries' region"
inject pgtable:9
fork parent child
expect errno ENOMEM
expect unchanged parent
expect no-leaks-since parent
check

echo "== fork 4: no failure"
fork parent child
expect ok
expect vmas child 54
expect shared parent $bss child $bss
touch child $shm1 read
expect shared parent $shm1 child $shm1
dump child vmas
dump child pgtables
check
exit child
exit parent
leaks
