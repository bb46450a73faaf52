select count(*), sum(0::int8) from lineitem where l_comment is not null;
