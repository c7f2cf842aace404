# Copy-on-write across fork, step by step: which frames parent and child share after the
# fork, what a write fault on either side does, and which memory is never copied.
#   mmemu script tools/scripts/cow.mms
mm p stack=132K

echo "== private anonymous memory: written, touched for write, and only read"
anon = mmap p auto 16K rw- private
write p $anon "written by the parent before fork"
touch p $anon+4K write
touch p $anon+8K read
expect mapcount p $anon 1

echo "== a private file mapping: page cache until written, then an anonymous copy"
data = mmap p auto 8K rw- private file=data.bin size=8K
touch p $data read
write p $data+4K "patched by the parent"

echo "== shared anonymous memory"
shm = mmap p auto 4K rw- shared
write p $shm "shared page"

dump p pgtables
fork p c
expect ok
dump c vmas
dump c tree
dump c pgtables

echo "== right after fork both map the same frames, read-only"
expect shared p $anon c $anon
expect mapcount p $anon 2
expect shared p $anon+8K c $anon+8K
expect shared p $data c $data
expect shared p $data+4K c $data+4K
expect bytes c $anon "written by the parent before fork"

echo "== the child writes: it gets its own copy, the parent keeps the original"
write c $anon "child"
expect distinct p $anon c $anon
# the copy kept the rest of the page
expect bytes c $anon "childen by the parent before fork"
expect bytes p $anon "written by the parent before fork"
expect mapcount p $anon 1

echo "== the parent writes a page the child still shares: the parent copies it"
touch p $anon+4K write
expect distinct p $anon+4K c $anon+4K
echo "== the child's frame is now its alone: its write fault reuses it, no copy"
touch c $anon+4K write
expect mapcount c $anon+4K 1

echo "== the zero page is never written: a write gets a fresh zeroed page"
write c $anon+8K "z"
expect distinct p $anon+8K c $anon+8K
expect bytes p $anon+8K "\0"

echo "== the file page: the child's write copies the page cache, the file is untouched"
write c $data "child's copy"
expect distinct p $data c $data
expect bytes p $data "data.bin page 0\n"

echo "== shared memory is not copied at fork: the child faults the same page in"
touch c $shm read
expect shared p $shm c $shm
write c $shm "from the child"
expect bytes p $shm "from the child"

dump c pgtables
check
exit c
echo "== the child's exit frees only what was its own: the shared frames stay with the parent"
expect bytes p $anon "written by the parent before fork"
expect mapcount p $data+4K 1
dump p counters
