#!/bin/bash
# check-layering: the module map of STYLE.md 1, checked by grep.
#
# Prints one line per violation, "path:line: what", and exits 1 if there is
# any; exits 0 with a one-line summary otherwise.  Comments are ignored (a
# comment may name sanlock_acquire() anywhere); string literals are not (a
# "/dev/mapper/control" string is what we look for).  tests/ and bench/ are
# not checked.
#
# Rules:
#   - sanlock: `sanlock_*` identifiers and <sanlock*.h> only in lease/
#   - process spawning (exec*, posix_spawn*, system, popen, g_spawn_*,
#     g_subprocess_*) only in block/lvm.c (lvm), block/mkfs.c (mke2fs for the
#     master LV), mount-helper/ and cli/main.c
#   - FUSE headers (<fuse*.h>, <fuse3/...>) only in fs/
#   - /dev/mapper/control and libdevmapper.h only in block/
#   - #include "DIR/..." and target_link_libraries(... ovDIR ...) only along
#     the dependency arrows below (cli -> fs -> domain -> {metadata, block,
#     lease} -> common; lease -> metadata, for the mailbox records that
#     lease/mailbox.c moves; mount-helper -> common)
#   - PkgConfig::FUSE3 only linked from fs/, PkgConfig::SANLOCK* from lease/,
#     devmapper from block/
set -euo pipefail

cd "$(dirname "$0")/.."

list_files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files --cached --others --exclude-standard
	else
		find . -path ./.git -prune -o -type f -print | sed 's|^\./||'
	fi
}

list_files | grep -E '(\.[ch]|(^|/)CMakeLists\.txt)$' |
	grep -vE '^(tests|bench|build[^/]*)/' | sort -u |
	perl -e '
use strict;
use warnings;

# Who may include or link whom (STYLE.md 1 "May use").
my %uses = (
	"common"       => [],
	"metadata"     => ["common"],
	"block"        => ["common"],
	"lease"        => ["common", "metadata"], # lease/mailbox.c: md-mailbox records
	"domain"       => ["common", "metadata", "block", "lease"],
	"fs"           => ["common", "domain"],
	"cli"          => ["common", "domain", "fs"],
	"mount-helper" => ["common"],
);
my %lib_dir = map { ("ov$_" => $_) } qw(common metadata block lease domain fs);
my %spawn_ok = map { $_ => 1 } qw(block/lvm.c block/mkfs.c cli/main.c);
my $spawn_re = qr/(?<![\w.>])
	(exec(?:l|lp|le|v|vp|vpe|ve|veat)|fexecve|posix_spawnp?|system|popen|g_spawn_\w+|g_subprocess_\w+)
	\s*\(/x;

my ($nfiles, $nbad) = (0, 0);

sub bad {
	my ($path, $line, $msg) = @_;
	print "$path:$line: $msg\n";
	$nbad++;
}

# The text with comments blanked (newlines kept, so line numbers hold) and
# string/character literals kept as they are.
sub strip_comments {
	my ($src, $c_like) = @_;
	if ($c_like) {
		$src =~ s{(/\*.*?\*/|//[^\n]*)|("(?:\\.|[^"\\\n])*"|\x27(?:\\.|[^\x27\\\n])*\x27)}
			 {defined $1 ? ("\n" x ($1 =~ tr/\n//)) : $2}gse;
	} else {
		$src =~ s{#[^\n]*}{}g;
	}
	return $src;
}

sub line_of {
	my ($text, $pos) = @_;
	return 1 + (substr($text, 0, $pos) =~ tr/\n//);
}

while (my $path = <STDIN>) {
	chomp $path;
	next unless -f $path;
	open(my $fh, "<", $path) or die "$path: $!\n";
	my $raw = do { local $/; <$fh> };
	close $fh;
	$nfiles++;

	my ($dir) = $path =~ m{^([^/]+)/};
	$dir //= "";
	my $is_cmake = $path =~ m{(^|/)CMakeLists\.txt$};
	my $text = strip_comments($raw, !$is_cmake);

	if ($is_cmake) {
		next if $dir eq "";    # the top level wires everything together
		while ($text =~ /target_link_libraries\s*\(([^)]*)\)/g) {
			my ($args, $at) = ($1, $-[0]);
			my $line = line_of($text, $at);
			for my $lib ($args =~ /\b(ov[a-z]+)\b/g) {
				my $to = $lib_dir{$lib} or next;
				next if $to eq $dir;
				next if grep { $_ eq $to } @{$uses{$dir} // []};
				bad($path, $line, "$dir/ links $lib ($to/), not allowed by STYLE.md 1");
			}
			bad($path, $line, "FUSE linked outside fs/")
				if $dir ne "fs" && $args =~ /PkgConfig::FUSE3\b/;
			bad($path, $line, "sanlock linked outside lease/")
				if $dir ne "lease" && $args =~ /PkgConfig::SANLOCK/;
			bad($path, $line, "devmapper linked outside block/")
				if $dir ne "block" && $args =~ /PkgConfig::DEVMAPPER|\bdevmapper\b/i;
		}
		next;
	}

	my $n = 0;
	for my $l (split /\n/, $text, -1) {
		$n++;
		if ($l =~ /^\s*#\s*include\s*([<"])([^>"]+)[>"]/) {
			my ($delim, $inc) = ($1, $2);
			bad($path, $n, "FUSE header <$inc> outside fs/")
				if $dir ne "fs" && $inc =~ m{^fuse};
			bad($path, $n, "sanlock header <$inc> outside lease/")
				if $dir ne "lease" && $inc =~ m{^sanlock};
			bad($path, $n, "libdevmapper.h outside block/")
				if $dir ne "block" && $inc =~ m{(^|/)libdevmapper\.h$};
			if ($delim eq "\"" && $inc =~ m{^([\w-]+)/} && exists $uses{$1}) {
				my $to = $1;
				if ($to ne $dir && exists $uses{$dir}
				    && !grep { $_ eq $to } @{$uses{$dir}}) {
					bad($path, $n, "$dir/ includes \"$inc\", not allowed by STYLE.md 1");
				}
			}
			next;
		}
		if ($dir ne "lease") {
			bad($path, $n, "$1 outside lease/") while $l =~ /(?<!\w)(sanlock_\w+)/g;
		}
		if ($dir ne "mount-helper" && !$spawn_ok{$path}) {
			bad($path, $n, "$1() outside block/lvm.c, block/mkfs.c, cli/main.c and mount-helper/")
				while $l =~ /$spawn_re/g;
		}
		if ($dir ne "block" && $l =~ m{/dev/mapper/control}) {
			bad($path, $n, "/dev/mapper/control outside block/");
		}
	}
}

if ($nbad) {
	exit 1;
}
print "check-layering: ok ($nfiles files)\n";
'
