#!/usr/bin/perl
# Writes a small GeoIP2-City-shaped database for the tests: `make_geoip.pl OUT.mmdb [CITY]`. Never real GeoLite
# data: a few documentation and loopback networks with made-up places. CITY (default Amsterdam) names the loopback
# network's city, so a test can swap the file and watch Vantage reload it.
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my ($out, $city) = @ARGV;
die "usage: make_geoip.pl OUT.mmdb [CITY]\n" unless $out;
$city //= 'Amsterdam';

my %types = (
    country => 'map', iso_code => 'utf8_string', names => 'map', en => 'utf8_string',
    subdivisions => ['array', 'map'], city => 'map', location => 'map',
    latitude => 'double', longitude => 'double',
);
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version => 6, record_size => 28, database_type => 'Vantage-Test-City',
    languages => ['en'], description => { en => 'Vantage test data' },
    map_key_type_callback => sub { $types{ $_[0] } },
    remove_reserved_networks => 0,
);
sub place {
    my ($iso, $region, $name, $lat, $lon) = @_;
    return {
        country => { iso_code => $iso, names => { en => $iso } },
        subdivisions => [ { names => { en => $region } } ],
        city => { names => { en => $name } },
        location => { latitude => $lat, longitude => $lon },
    };
}
$tree->insert_network('127.0.0.0/8', place('NL', 'North Holland', $city, 52.37, 4.89));
$tree->insert_network('203.0.113.0/24', place('DE', 'Bavaria', 'Munich', 48.14, 11.58));
$tree->insert_network('198.51.100.0/24', place('US', 'California', 'San Francisco', 37.77, -122.42));
$tree->insert_network('2001:db8::/32', place('JP', 'Tokyo', 'Tokyo', 35.68, 139.69));
open my $fh, '>:raw', "$out.tmp" or die "cannot write $out.tmp: $!";
$tree->write_tree($fh);
close $fh;
rename "$out.tmp", $out or die "cannot rename to $out: $!";
